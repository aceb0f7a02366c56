/** Model administration: upload a model or a new version of one, roll back, delete, reload from disk. */
import { createRoute } from "@hono/zod-openapi";
import { authErrors, maxBodyBytes, problemResponse as problem, problemResponses, requires } from "../../openapi.ts";
import { ModelObject } from "../../schemas.ts";
import { AdminModelName, DeletedModel, uploadForm } from "./schemas.ts";

const SWAP =
  "The new version loads on sessions of its own and must pass a test inference before it takes requests; requests " +
  "already queued finish on the old version, whose sessions close after them. If it fails to load or to run, the " +
  "answer is 422 with the reason and the old version keeps serving. Changes to one model run one at a time.";

const modelResponse = (description: string) => ({ description, content: { "application/json": { schema: ModelObject } } });

/** An upload's own errors: its form, its size, its manifest. */
function uploadErrors() {
  const problems = problemResponses(...authErrors, 400, 409, 413, 415, 422, 500);
  return {
    ...problems,
    400: problem("The body is not valid multipart/form-data", {
      type: "/problems/malformed-multipart",
      title: "Malformed multipart body",
      status: 400,
      detail: "The multipart/form-data body cannot be parsed; send model.onnx, model.json and (text-generation models) tokenizer.json as files of a multipart/form-data body.",
    }),
    409: { ...problems[409], description: "The model exists already (POST), or the version is not newer than every kept version (PUT)" },
    413: { ...problems[413], description: "The upload is larger than MODEL_UPLOAD_MAX_BYTES" },
    415: problem("The body is not multipart/form-data", {
      type: "/problems/unsupported-media-type",
      title: "Unsupported Media Type",
      status: 415,
      detail: "This route takes model files, not application/json: send model.onnx, model.json and (text-generation models) tokenizer.json as files of a multipart/form-data body.",
    }),
    422: {
      ...problems[422],
      description: "A file is missing, unknown or sent twice; the manifest is invalid; or the model failed to load or to run its test inference",
    },
  };
}

export function modelsRoutes(uploadMaxBytes: number) {
  const body = { required: true, content: { "multipart/form-data": { schema: uploadForm } } };

  const create = createRoute({
    method: "post",
    path: "/v1/models",
    tags: ["Models"],
    ...requires("admin"),
    ...maxBodyBytes(uploadMaxBytes),
    summary: "Upload a new model",
    description:
      "multipart/form-data with the files `model.onnx`, `model.json` and, for text-generation models, `tokenizer.json`. " +
      "The manifest's `name` names the model and its `version` the first version. The answer comes once the model " +
      "is loaded, has passed a test inference and serves.",
    request: { body },
    responses: {
      201: {
        ...modelResponse("The model, serving"),
        headers: { Location: { description: "The model's URL", schema: { type: "string", example: "/v1/models/wine" } } },
      },
      ...uploadErrors(),
    },
  });

  const update = createRoute({
    method: "put",
    path: "/v1/models/{name}",
    tags: ["Models"],
    ...requires("admin"),
    ...maxBodyBytes(uploadMaxBytes),
    summary: "Upload a new version of a model",
    description:
      "The same form as POST /v1/models; the manifest's `name` must be the path's and its `version` newer than every " +
      `kept version. The previous version is kept on disk (MODEL_VERSIONS_KEPT versions in all) for rollback. ${SWAP}`,
    request: { params: AdminModelName, body },
    responses: { 200: modelResponse("The model, serving the new version"), ...uploadErrors(), ...problemResponses(404) },
  });

  const rollback = createRoute({
    method: "post",
    path: "/v1/models/{name}/rollback",
    tags: ["Models"],
    ...requires("admin"),
    summary: "Serve the previous version again",
    description: `Makes the kept version before the served one current, and removes the served one from disk. ${SWAP}`,
    request: { params: AdminModelName },
    responses: {
      200: modelResponse("The model, serving the previous version"),
      ...problemResponses(...authErrors, 404, 409, 422, 500),
      409: { ...problemResponses(409)[409], description: "No earlier version is kept" },
    },
  });

  const remove = createRoute({
    method: "delete",
    path: "/v1/models/{name}",
    tags: ["Models"],
    ...requires("admin"),
    summary: "Delete a model",
    description:
      "The model stops taking requests at once; requests in flight finish on it, then its sessions close and its " +
      "files (every version) are removed. Its name can be used again.",
    request: { params: AdminModelName },
    responses: {
      200: { description: "OpenAI's deleted-model object", content: { "application/json": { schema: DeletedModel } } },
      ...problemResponses(...authErrors, 404, 409, 422, 500),
      409: { ...problemResponses(409)[409], description: "The model's folder is a symbolic link: it is changed only on disk" },
    },
  });

  const reload = createRoute({
    method: "post",
    path: "/v1/models/{name}/reload",
    tags: ["Models"],
    ...requires("admin"),
    summary: "Reload a model from disk",
    description:
      "Reads the served version's files again (model.json, model.onnx; in the versioned layout, the version CURRENT names), " +
      "warms the new sessions with one inference, then swaps them in: from then on every route validates against the new " +
      "manifest. Requests already queued finish on the old version. If loading fails, the old version keeps serving and the " +
      "answer is 422 with the reason. A reload asked for while another change of the model runs waits for a single " +
      "follow-up load, shared with every reload asked for meanwhile.",
    request: { params: AdminModelName },
    responses: {
      200: modelResponse("The model as now served, as GET /v1/models/{model} shows it"),
      ...problemResponses(...authErrors, 404, 422, 500),
    },
  });

  return { create, update, rollback, remove, reload };
}

export type ModelsRoutes = ReturnType<typeof modelsRoutes>;
